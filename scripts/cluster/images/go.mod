module local/worker-images

go 1.24
