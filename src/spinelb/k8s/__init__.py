"""Kubernetes: the objects spinelb reads (objects), and the one client layer that talks to the API."""
