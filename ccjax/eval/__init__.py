"""After training: cluster assignment (assign.py), metrics (metrics.py: Hungarian ACC, scikit-learn's
NMI and ARI), evaluating a run's checkpoints (evaluation.py), the report (report.py), assigning new
images (predict.py) and the fusing ViT's attention maps (attention_maps.py)."""
