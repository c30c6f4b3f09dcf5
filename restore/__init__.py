"""Deblurring with a trained generator: loading checkpoints and the bundled weights (sha256-checked), device and
CPU-memory settings, tiled inference, image I/O with bit depth and alpha kept, job planning, ONNX export, the web
demo. Imports only nets and datasets, so restoring a photo never loads the training engine."""
