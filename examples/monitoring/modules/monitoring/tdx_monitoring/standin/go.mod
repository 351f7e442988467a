module example.invalid/metrics-agg

go 1.22
