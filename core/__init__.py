"""The bottom layer every other package builds on: the errors a user can fix, checkpoint files (atomic writes,
verified reads, SHA256SUMS), hashing, devices, the CPU allocator and feature flags, where weights/ and configs/
are, and image files (reading with the pixel limit, writing in the input's bit depth). It imports no other project
package."""
