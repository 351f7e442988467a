module example.invalid/my-prover

go 1.22
