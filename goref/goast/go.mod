module palloc/goast

go 1.21
