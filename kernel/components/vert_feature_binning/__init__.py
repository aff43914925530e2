"""VertFeatureBinning: bins, WOE and IV at every member; provider IV from encrypted labels."""
