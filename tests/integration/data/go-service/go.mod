module example.invalid/greeter

go 1.21
