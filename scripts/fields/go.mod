module apiserver-storage/fields

go 1.26.0
