"""polyvlm.models.connectors"""
