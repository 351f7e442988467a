module example.invalid/node-exporter-standin

go 1.22
