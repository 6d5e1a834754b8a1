"""Building blocks of MDR-CHCA, one small module each, with the equation in the docstring."""
