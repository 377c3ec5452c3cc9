"""spinelb: announce Kubernetes LoadBalancer addresses to spine switches over BGP."""

__version__ = "0.1.0"
