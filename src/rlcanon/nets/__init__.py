"""Networks: MLP and Nature-CNN encoders, policy heads, Q heads."""
