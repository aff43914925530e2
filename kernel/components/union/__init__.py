"""Union: several data sets of the same columns become one; duplicate ids refused or resolved by a rule."""
