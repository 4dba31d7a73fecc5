package chaos

// sysSetns is setns(2); package syscall names it only on some architectures.
const sysSetns = 346
