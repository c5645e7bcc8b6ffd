"""Studies beside the search: rank statistics of proxies and the paper's MLP theory experiment."""
