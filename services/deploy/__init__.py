"""Deploying members: values files rendered into Kubernetes manifests."""
