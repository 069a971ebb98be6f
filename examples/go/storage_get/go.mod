module storage_get

go 1.19

require apiserver-storage/go v0.0.0

replace apiserver-storage/go => ../../../bindings/go
