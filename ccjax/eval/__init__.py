"""After training: cluster assignment (assign.py), metrics (metrics.py: Hungarian ACC, scikit-learn's
NMI and ARI), evaluating a run's checkpoints (evaluation.py), the report (report.py), assigning new
images (predict.py), the fusing ViT's attention maps (attention_maps.py), the probe of what the
clusters follow (nuisance.py) and choosing K without labels (suggest_k.py)."""
