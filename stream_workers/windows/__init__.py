"""Window math: 5-minute buckets and the KPI aggregate, plain Python, outside the Faust agents."""
