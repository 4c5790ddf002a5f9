"""polyvlm.synth"""
