module apiserver-storage/go

go 1.19
