"""Turning labelled cases into model bundles. Imports triage/, never serving/."""
