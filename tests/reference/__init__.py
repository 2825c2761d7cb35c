"""The implementations before the 2026-12-03 throughput round (commit fd74071), kept verbatim (imports made
absolute) as the reference the property tests compare the faster code with: the same decisions, covariances
and VaR/CVaR numbers, bit for bit. Not used by the project's code."""
