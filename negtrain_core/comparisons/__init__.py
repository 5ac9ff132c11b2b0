"""The methods the paper compares negative training with: MMI-antiLM, the GAN and unlikelihood training."""
