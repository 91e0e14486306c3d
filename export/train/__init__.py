"""Training of the project's demo model (narrowed PP-YOLOE_seg on synthetic shapes); see train_demo.py."""
