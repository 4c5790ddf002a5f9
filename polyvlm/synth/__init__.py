"""polyvlm.synth: instruction data synthesis with open models (stages, backends, runners, resumable storage)."""
