"""Offline training (emo_train): data set readers, the feature cache built by the runtime's own
builders, the three stages (face distillation, audio encoder, fusion GRU), one shared loop."""
