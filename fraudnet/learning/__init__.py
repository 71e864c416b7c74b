"""Learning from investigators' decisions: labels, entity features, a calibrated classifier and its scores."""
