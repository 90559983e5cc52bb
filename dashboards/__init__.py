"""Dashboards for admins: views and pure plotly figure builders; no models."""
