"""Network-namespace lab for spinelb: namespaces, FRR/BIRD/GoBGP/ExaBGP peers, the reference site."""
