"""mdp: a modern data platform as code."""
