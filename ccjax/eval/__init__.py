"""Scoring after training: cluster assignment (assign.py), metrics (metrics.py: Hungarian ACC, scikit-learn's
NMI and ARI), a run's checkpoints scored (evaluation.py), assigning new images (predict.py) and choosing K
without labels (suggest_k.py). What is written under <workdir>/report/ is ccjax/report/."""
