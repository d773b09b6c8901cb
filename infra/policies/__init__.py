"""The policy pack and the rule functions its tests call."""
