"""Credit scoring pieces shared by components: binning models, WOE tables, scorecard points."""
