"""Where a trained model looks and what its clusters follow: attention_maps.py (a ViT's attention, the MFAVBs
paper's Fig. 4), cam.py (Grad-CAM or token attention, GeCC's Fig. 1) and nuisance.py (the probe: cues.py
describes each image, predictability.py cross-validates). ccjax/report/ draws them."""
