"""OneHot: categorical columns to indicator columns, capped, with an "other" bucket for the rest."""
