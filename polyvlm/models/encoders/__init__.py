"""polyvlm.models.encoders"""
