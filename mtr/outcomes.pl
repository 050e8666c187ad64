#!/usr/bin/perl
# Reads the stdout of one mariadb-test-run.pl run (and, with --vardir, its server error logs) and
# prints one tab-separated line per test:
#   test  combination  outcome  time_ms  symptom  server_log
# outcome: pass, fail, skipped, disabled. symptom: the skip reason, or the first real failure line
# of MTR's report (the failing mysqltest command, the first result-diff line, the warning MTR found
# in a server log, a timeout), prefixed with the first wait_condition timeout when there was one.
# server_log: for failures, the first [ERROR]/[Warning] lines (or crash lines) written by any server
# while that test ran (error logs are split at MTR's "CURRENT_TEST: suite.test" markers).
#
#   perl mtr/outcomes.pl [--vardir DIR] stdout.log > results.tsv
use strict;
use warnings;

my $vardir;
if (@ARGV && $ARGV[0] eq '--vardir') { shift; $vardir = shift; }
my $log = shift or die "usage: outcomes.pl [--vardir DIR] stdout.log\n";

# Log noise every test produces, on both providers.
my $noise = qr/unknown (variable|option) '?-?-?loose|max_open_files|Changed limits|wsrep_sst_receive_address is set to|Could not open state file|Could not open saved state file|access file\(.*gvwstate.dat\)|Quorum: No node with complete state|mtr\.add_suppression|Aborted connection|setrlimit could not change|option 'innodb-|has invalid value 'root'|io_uring_queue_init\(\) failed|InnoDB: liburing disabled|Using legacy|deprecated/i;

my (%res, @order, $cur);
open(my $fh, '<', $log) or die "$log: $!\n";
while (my $line = <$fh>) {
  chomp $line;
  if ($line =~ /^(?:\[\s*\d+%\]\s+)?(\w+\.[\w\-]+)(?:\s+'([^']*)')?\s+(?:w\d+\s+)?\[ (pass|fail|skipped|disabled) \]\s*(.*?)\s*$/) {
    my ($t, $combo, $o, $rest) = ($1, $2 // '', $3, $4);
    my $key = "$t\t$combo";
    push @order, $key unless $res{$key};
    my $ms = ($o eq 'pass' && $rest =~ /^(\d+)/) ? $1 : '';
    $res{$key} = { o => $o, ms => $ms, sym => ($o eq 'pass' ? '' : $rest), block => [] };
    $cur = $o eq 'fail' ? $key : undef;
    next;
  }
  if (defined $cur) {
    if ($line =~ /^-{20,}$|^The servers were restarted|^Spent .* executing/) { $cur = undef; next; }
    push @{ $res{$cur}{block} }, $line;
  }
}
close $fh;

sub clean { my $s = shift; $s =~ s/\t/ /g; $s =~ s/\s+$//; $s =~ s/^\s+//; return $s; }

# The first real symptom in MTR's report of a failed test.
sub symptom {
  my ($r) = @_;
  my @b = @{ $r->{block} };
  my ($wait, $main, $diff_minus, $diff_plus);
  for my $i (0 .. $#b) {
    my $l = $b[$i];
    $wait //= "wait_condition timeout: $1" if $l =~ /^Timeout in (?:wait_condition|wait_until_connected_again|wait_until_ready)\.inc(?: for)? (.*)/;
    $wait //= clean($l) if !defined $wait && $l =~ /^Timeout in \S+\.inc/;
    if (!defined $main) {
      if ($l =~ /^(?:mysqltest: )?At line \d+: (.*)/) { $main = $1; }
      elsif ($l =~ /^mysqltest: (?!In included file)(.*)/) { $main = $1; }
      elsif ($l =~ /^Test case timeout after/) { $main = clean($l); }
      elsif ($l =~ /(Server .* failed during test run|crashed|got signal|mysqltest failed but provided no output|Could not execute 'check-testcase'|Failed to start mysqld|Can't connect|failed to start|did not start)/i) { $main = clean($l); }
      elsif ($l =~ /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .*\[(ERROR|Warning)\]/ && $r->{sym} =~ /Found warnings/) { $main = "server log: " . clean($l); }
      elsif ($l =~ /^\d{6} .*\[(ERROR|Warning)\]/ && $r->{sym} =~ /Found warnings/) { $main = "server log: " . clean($l); }
    }
    $diff_minus //= $l if $l =~ /^-(?!--)/ && !defined $diff_plus;
    $diff_plus //= $l if $l =~ /^\+(?!\+\+)/;
  }
  if (!defined $main && (defined $diff_minus || defined $diff_plus)) {
    $main = "result differs: expected '" . clean(substr($diff_minus // '-', 1)) . "' got '" . clean(substr($diff_plus // '+', 1)) . "'";
  }
  $main //= $r->{sym} ne '' ? $r->{sym} : '(no detail in MTR output)';
  $main = "$r->{sym}: $main" if $r->{sym} ne '' && index($main, $r->{sym}) < 0 && $r->{sym} !~ /^\d+$/;
  return clean(defined $wait && index($main, $wait) < 0 ? "$main [after $wait]" : $main);
}

# Error-log lines per test, from every server's error log under the vardir.
my %errs;
if (defined $vardir) {
  my @files = (glob("$vardir/log/mysqld.*.err"), glob("$vardir/*/log/mysqld.*.err"));
  for my $f (@files) {
    next if $f =~ /\.warnings$/;
    my ($node) = $f =~ /(mysqld\.\d+)\.err$/;
    open(my $e, '<', $f) or next;
    my $test;
    while (my $l = <$e>) {
      chomp $l;
      if ($l =~ /^CURRENT_TEST: (\S+)/) { $test = $1; next; }
      next unless defined $test;
      my $prio = $l =~ /\[ERROR\]|got signal|panicked|Assertion|segfault|terminate called|WSREP_SST: \[ERROR\]/ ? 0
               : $l =~ /\[Warning\]/ ? 1
               : $l =~ /WSREP: (Non-primary view:|Failed|failed)/ ? 2 : -1;
      next if $prio < 0 || $l =~ $noise;
      my $text = "$node: " . clean($l =~ s/^\d{4}-\d\d-\d\d \s?\d+:\d\d:\d\d \d+ //r);
      $text = substr($text, 0, 220) . '...' if length($text) > 220;
      push @{ $errs{$test}[$prio] //= [] }, $text;
    }
    close $e;
  }
}

for my $key (@order) {
  my $r = $res{$key};
  my ($t) = split /\t/, $key;
  my $sym = $r->{o} eq 'fail' ? symptom($r) : clean($r->{sym});
  my @el;
  if ($r->{o} eq 'fail') {
    for my $p (0 .. 2) {
      for my $x (@{ ($errs{$t} // [])->[$p] // [] }) { push @el, $x if @el < 3 && !grep { $_ eq $x } @el; }
    }
  }
  my $el = join(' | ', @el);
  print join("\t", $key, $r->{o}, $r->{ms}, $sym, $el), "\n";
}
