"""polyvlm.models"""
