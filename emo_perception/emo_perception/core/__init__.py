"""Pure perception library: no rclpy import anywhere below this package."""
