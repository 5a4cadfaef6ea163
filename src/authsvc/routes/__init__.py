"""HTTP routes: thin handlers over the functions in the rest of the package."""
