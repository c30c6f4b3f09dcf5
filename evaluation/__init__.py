"""Scoring restorations: PSNR/SSIM/LPIPS and the offline perceptual metrics with their conventions stated, benchmark
and folder scoring, tables, breakdowns and significance, figures and training curves."""
