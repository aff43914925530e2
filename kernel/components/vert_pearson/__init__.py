"""VertPearson: Pearson correlation between the promoter's and providers' features without moving rows."""
