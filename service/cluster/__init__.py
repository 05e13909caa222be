"""The cluster: intake, executor and guard processes sharing one store and one bus."""
