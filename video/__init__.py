"""Pure video code: decoding, detection, tracking, clips, kinematics (no Django)."""
