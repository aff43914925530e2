"""A member's serving service: published models answer predictions live, across members."""
