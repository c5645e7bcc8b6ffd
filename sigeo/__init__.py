"""SiGeo-NAS: sub-one-shot NAS for CTR models (data, search space, proxies, search, studies)."""
