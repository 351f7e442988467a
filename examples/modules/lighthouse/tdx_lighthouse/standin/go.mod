module example.invalid/lighthouse-standin

go 1.22
