"""The BGP topology: reading and validating the inventory, the pure planner (mesh or route
reflectors), applying a plan to the datastore in a safe order, and the human report."""
