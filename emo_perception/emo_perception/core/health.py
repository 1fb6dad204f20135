"""Health levels a pipeline reports (the values of diagnostic_msgs/DiagnosticStatus, without ROS)."""
OK, WARN, ERROR = 0, 1, 2
