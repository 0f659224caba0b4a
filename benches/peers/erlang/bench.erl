%% Erlang peer of benches/suite.rs: the same cases, the same output lines.
%%
%%   erlc -o ../../../target/peers/erlang bench.erl
%%   ERLANGEN_BENCH_CASE=ping_pong_1w erl -noshell +S 1 +P 5000000 \
%%       -pa ../../../target/peers/erlang -run bench main [quick]
%%
%% Processes and their mailboxes, plain ! and receive. The number of
%% schedulers is the runner's +S (1w = 1, 2w = 2).
-module(bench).
-behaviour(gen_server).
-export([main/0, main/1, dist_ponger/1, dist_count/2, dist_sink/0, hibernated_wake/1, serve/0]).
-export([join_and_wait/2, start_members/1, os_pid/0]).
-export([init/1, handle_call/3, handle_cast/2]).

main() -> main([]).
main(Args) ->
    Div = case Args of ["quick" | _] -> 10; _ -> 1 end,
    Case = os:getenv("ERLANGEN_BENCH_CASE", ""),
    try run(Case, Div) of
        _ -> halt(0)
    catch
        throw:{dnf, Why} -> io:format(standard_error, "DNF: ~s~n", [Why]), halt(3);
        Class:Reason:Stack -> io:format(standard_error, "DNF: ~p:~p ~p~n", [Class, Reason, Stack]), halt(1)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).
per(Ns, N) -> io_lib:format("~.1f", [Ns / N]).
ms(Ns) -> io_lib:format("~.1f", [Ns / 1.0e6]).

label(Case) ->
    case lists:suffix("2w", Case) of true -> "2w"; false -> "1w" end.

run("ping_pong_" ++ _ = Case, Div) when Case =/= "ping_pong_2w_cross" -> ping_pong(Div, label(Case));
run("counting_" ++ _ = Case, Div) -> counting(Div, label(Case));
run("ring_100", Div) -> ring(100, Div, "100 1w");
run("ring_10000", Div) -> ring(10000, Div, "10000 1w");
run("ring_100_2w", Div) -> ring(100, Div, "100 2w");
run("skynet", Div) -> skynet(Div);
run("hibernated", Div) -> hibernated(Div);
run("parked", Div) -> parked(Div);
run("churn_" ++ _ = Case, Div) -> churn(Div, label(Case));
run("chameneos_" ++ _ = Case, Div) -> chameneos(Div, label(Case));
run("big_" ++ _ = Case, Div) -> big(Div, label(Case));
run("gen_call", Div) -> gen_call(Div);
run("dist_rtt", Div) -> with_peer(fun(Peer) -> dist_rtt(Peer, Div) end);
run("dist_call", Div) -> with_peer(fun(Peer) -> dist_call(Peer, Div) end);
run("dist_oneway_1", Div) -> with_peer(fun(Peer) -> dist_oneway(Peer, Div, 1) end);
run("dist_oneway_8", Div) -> with_peer(fun(Peer) -> dist_oneway(Peer, Div, 8) end);
run("dist_bulk_1m", Div) -> with_peer(fun(Peer) -> dist_bulk(Peer, Div, 1 bsl 20, 256, "1MiB") end);
run("dist_bulk_64m", Div) -> with_peer(fun(Peer) -> dist_bulk(Peer, Div, 64 bsl 20, 8, "64MiB") end);
run("dist_hol", Div) -> with_peer(fun(Peer) -> dist_hol(Peer, Div) end);
%% The interop rows (ours with an Erlang node) compare with Erlang with an
%% Erlang node: the same as B8's.
run("erl_rtt", Div) -> run("dist_rtt", Div);
run("erl_oneway_1", Div) -> run("dist_oneway_1", Div);
run("cluster_mesh", _) -> cluster_mesh();
run("cluster_group_send", Div) -> cluster_group_send(Div);
run(Case, _) -> throw({dnf, "Erlang has no version of case " ++ Case ++ " (processes cannot be placed on schedulers)"}).

%% B12: gen_server:call to a gen_server (this module's callbacks), on an
%% empty mailbox and behind 500,000 unrelated messages in the caller's.
gen_call(Div) ->
    Calls = 100,
    Noise = 500000 div Div,
    {ok, Server} = gen_server:start_link(?MODULE, [], []),
    Empty = time_calls(Server, Calls),
    Self = self(),
    lists:foreach(fun(N) -> Self ! N end, lists:seq(1, Noise)),
    Loaded = time_calls(Server, Calls),
    io:format("B12 call empty per_call_ns=~s~n", [per(Empty, Calls)]),
    io:format("B12 call loaded noise=~b per_call_ns=~s~n", [Noise, per(Loaded, Calls)]).

time_calls(Server, Calls) ->
    T0 = now_ns(),
    lists:foreach(fun(N) -> N1 = N + 1, N1 = gen_server:call(Server, N) end, lists:seq(1, Calls)),
    now_ns() - T0.

%% B12 across nodes: gen_server:call to a gen_server on the peer node.
dist_call(Peer, Div) ->
    Calls = 2000 div Div,
    Noise = 500000 div Div,
    {ok, Server} = rpc:call(Peer, gen_server, start, [?MODULE, [], []]),
    1 = gen_server:call(Server, 0),
    Empty = time_calls(Server, Calls),
    Self = self(),
    lists:foreach(fun(N) -> Self ! N end, lists:seq(1, Noise)),
    1 = gen_server:call(Server, 0),
    Loaded = time_calls(Server, Calls),
    io:format("B12 call remote empty per_call_ns=~s~n", [per(Empty, Calls)]),
    io:format("B12 call remote loaded noise=~b per_call_ns=~s~n", [Noise, per(Loaded, Calls)]).

init([]) -> {ok, nostate}.
handle_call(N, _From, State) -> {reply, N + 1, State}.
handle_cast(_Request, State) -> {noreply, State}.

ping_pong(Div, Label) ->
    Rounds = 1000000 div Div,
    Self = self(),
    Pong = spawn(fun() -> ponger(Rounds) end),
    Ping = spawn(fun() ->
        T0 = now_ns(),
        pinger(Pong, Rounds),
        Self ! {elapsed, now_ns() - T0}
    end),
    _ = Ping,
    receive {elapsed, Ns} ->
        io:format("B1 ping-pong ~s rounds=~b rtt_ns=~s~n", [Label, Rounds, per(Ns, Rounds)])
    end.

ponger(0) -> ok;
ponger(N) -> receive {From, X} -> From ! X end, ponger(N - 1).

pinger(_, 0) -> ok;
pinger(Pong, N) -> Pong ! {self(), N}, receive _ -> ok end, pinger(Pong, N - 1).

counting(Div, Label) ->
    N = 1000000 div Div,
    Self = self(),
    Counter = spawn(fun() -> count(0, Self) end),
    T0 = now_ns(),
    [Counter ! I || I <- lists:seq(0, N - 1)],
    Counter ! total,
    receive {total, Sum} ->
        Ns = now_ns() - T0,
        Sum = N * (N - 1) div 2,
        io:format("B2 counting ~s messages=~b per_msg_ns=~s~n", [Label, N, per(Ns, N)])
    end.

count(Sum, Root) ->
    receive
        total -> Root ! {total, Sum};
        I -> count(Sum + I, Root)
    end.

ring(Size, Div, Label) ->
    Hops = 1000000 div Div,
    Self = self(),
    First = spawn(fun() -> receive {next, Next} -> ring_member(Next, Self) end end),
    Last = lists:foldl(fun(_, Next) -> spawn(fun() -> ring_member(Next, Self) end) end, First, lists:seq(2, Size)),
    First ! {next, Last},
    T0 = now_ns(),
    Last ! Hops,
    receive done -> ok end,
    Ns = now_ns() - T0,
    io:format("B3 ring ~s agents=~b hops=~b per_hop_ns=~s~n", [Label, Size, Hops, per(Ns, Hops)]).

ring_member(Next, Root) ->
    receive
        0 -> Root ! done, Next ! stop;
        stop -> Next ! stop;
        T -> Next ! T - 1, ring_member(Next, Root)
    end.

skynet(Div) ->
    Leaves = 1000000 div Div,
    Self = self(),
    T0 = now_ns(),
    spawn(fun() -> skynet_node(Self, 0, Leaves) end),
    Sum = receive S -> S end,
    Ns = now_ns() - T0,
    Sum = Leaves * (Leaves - 1) div 2,
    io:format("B4 skynet 2w agents=~b sum=~b wall_ms=~s peak_rss_mib=~.1f~n",
              [Leaves + Leaves div 9, Sum, ms(Ns), peak_rss_kib() / 1024]).

skynet_node(Parent, Num, 1) -> Parent ! Num;
skynet_node(Parent, Num, Size) ->
    Self = self(),
    Step = Size div 10,
    [spawn(fun() -> skynet_node(Self, Num + I * Step, Step) end) || I <- lists:seq(0, 9)],
    Parent ! collect(10, 0).

collect(0, Sum) -> Sum;
collect(N, Sum) -> receive X -> collect(N - 1, Sum + X) end.

status_kib(Field) ->
    {ok, Bin} = file:read_file("/proc/self/status"),
    Lines = string:split(binary_to_list(Bin), "\n", all),
    [Line] = [L || L <- Lines, lists:prefix(Field, L)],
    [_, V | _] = string:lexemes(Line, " \t"),
    list_to_integer(V).

peak_rss_kib() -> status_kib("VmHWM:").

parked(Div) ->
    N = 1000000 div Div,
    Before = status_kib("VmRSS:"),
    lists:foreach(fun(Round) ->
        Self = self(),
        %% Each process bumps a shared counter as it parks (atomics), as an
        %% Erlang programmer counts a million events: a million `started`
        %% messages would pile into the driver's mailbox.
        Started = atomics:new(1, []),
        T0 = now_ns(),
        Pids = [spawn(fun() -> atomics:add(Started, 1, 1), receive go -> Self ! finished end end)
                || _ <- lists:seq(1, N)],
        wait_count(Started, N),
        Spawn = now_ns() - T0,
        Rss = status_kib("VmRSS:"),
        T1 = now_ns(),
        [P ! go || P <- Pids],
        wait(N, finished),
        Teardown = now_ns() - T1,
        Label = case Round of 0 -> "2w cold"; 1 -> "2w warm" end,
        io:format("B5 parked ~s agents=~b spawn_ns_per_agent=~s rss_bytes_per_agent=~b teardown_ns_per_agent=~s~n",
                  [Label, N, per(Spawn, N), (Rss - Before) * 1024 div N, per(Teardown, N)])
    end, [0, 1]).

%% B5 with hibernation: a million processes park in receive, then each is
%% told to hibernate (erlang:hibernate/3: its stack is dropped and its heap
%% compacted), then each is woken by a message and finishes.
hibernated(Div) ->
    N = 1000000 div Div,
    Before = status_kib("VmRSS:"),
    Parked = atomics:new(1, []),
    Done = atomics:new(1, []),
    Pids = [spawn(fun() ->
                      atomics:add(Parked, 1, 1),
                      receive hibernate ->
                          erlang:hibernate(?MODULE, hibernated_wake, [Done])
                      end
                  end) || _ <- lists:seq(1, N)],
    wait_count(Parked, N),
    RssParked = status_kib("VmRSS:"),
    T0 = now_ns(),
    [P ! hibernate || P <- Pids],
    %% Each process is looked at until it has hibernated, in order.
    [wait_hibernated(P) || P <- Pids],
    Hibernate = now_ns() - T0,
    Rss = status_kib("VmRSS:"),
    T1 = now_ns(),
    [P ! go || P <- Pids],
    wait_count(Done, N),
    Wake = now_ns() - T1,
    io:format("B5 hibernated 2w agents=~b rss_bytes_per_agent_parked=~b rss_bytes_per_agent=~b "
              "hibernate_ns_per_agent=~s wake_ns_per_agent=~s~n",
              [N, (RssParked - Before) * 1024 div N, (Rss - Before) * 1024 div N,
               per(Hibernate, N), per(Wake, N)]).

hibernated_wake(Done) -> receive _ -> atomics:add(Done, 1, 1) end.

wait_hibernated(P) ->
    case erlang:process_info(P, current_function) of
        {current_function, {erlang, hibernate, 3}} -> ok;
        _ -> erlang:yield(), wait_hibernated(P)
    end.

wait(0, _) -> ok;
wait(N, Tag) -> receive Tag -> wait(N - 1, Tag) end.

wait_count(Counter, N) ->
    case atomics:get(Counter, 1) >= N of
        true -> ok;
        false -> erlang:yield(), wait_count(Counter, N)
    end.

churn(Div, Label) ->
    N = 1000000 div Div,
    Self = self(),
    %% A counter takes the workers' reports, so the spawning process's own
    %% mailbox does not grow to a million messages.
    Counter = spawn(fun() -> wait(N, churned), Self ! all_churned end),
    T0 = now_ns(),
    churn_loop(N, Counter),
    receive all_churned -> ok end,
    Ns = now_ns() - T0,
    io:format("B6 churn ~s agents=~b per_agent_ns=~s~n", [Label, N, per(Ns, N)]).

churn_loop(0, _) -> ok;
churn_loop(I, Root) ->
    P = spawn(fun() -> receive X -> _ = abs(math:sin(X) * math:cos(X)), Root ! churned end end),
    P ! float(I),
    churn_loop(I - 1, Root).

chameneos(Div, Label) ->
    Creatures = 100,
    Meetings = 200000 div Div,
    Self = self(),
    T0 = now_ns(),
    Broker = spawn(fun() -> broker(Meetings, none, Creatures) end),
    [spawn(fun() -> creature(Broker, I rem 3, 0, Self) end) || I <- lists:seq(0, Creatures - 1)],
    Total = lists:sum([receive {met, M} -> M end || _ <- lists:seq(1, Creatures)]),
    Ns = now_ns() - T0,
    Total = 2 * Meetings,
    io:format("B7 chameneos ~s meetings=~b total_ms=~s~n", [Label, Meetings, ms(Ns)]).

broker(0, Waiting, Creatures) ->
    Left = case Waiting of none -> Creatures; {P, _} -> P ! stop, Creatures - 1 end,
    [receive {meet, P2, _} -> P2 ! stop end || _ <- lists:seq(1, Left)];
broker(M, none, C) -> receive {meet, P, Colour} -> broker(M, {P, Colour}, C) end;
broker(M, {P1, C1}, C) ->
    receive {meet, P2, C2} -> P1 ! {colour, C2}, P2 ! {colour, C1}, broker(M - 1, none, C) end.

creature(Broker, Colour, Met, Root) ->
    Broker ! {meet, self(), Colour},
    receive
        {colour, Other} ->
            New = case Other of Colour -> Colour; _ -> 3 - Colour - Other end,
            creature(Broker, New, Met + 1, Root);
        stop -> Root ! {met, Met}
    end.

big(Div, Label) ->
    Agents = 120,
    Pings = 20000 div Div,
    Self = self(),
    Pids = [spawn(fun() -> receive {peers, Ps} -> big_agent(I, list_to_tuple(Ps), Pings, 0, I * 16#9e3779b97f4a7c15 + 1, Self) end end)
            || I <- lists:seq(0, Agents - 1)],
    T0 = now_ns(),
    [P ! {peers, Pids} || P <- Pids],
    Total = lists:sum([receive {done, D} -> D end || _ <- Pids]),
    Ns = now_ns() - T0,
    [P ! stop || P <- Pids],
    Total = Agents * Pings,
    io:format("B7 big ~s messages=~b total_ms=~s~n", [Label, 2 * Agents * Pings, ms(Ns)]).

next(Index, Seed0, N) ->
    S1 = (Seed0 bxor (Seed0 bsl 13)) band 16#FFFFFFFFFFFFFFFF,
    S2 = S1 bxor (S1 bsr 7),
    S3 = (S2 bxor (S2 bsl 17)) band 16#FFFFFFFFFFFFFFFF,
    T = S3 rem N,
    {case T of Index -> (T + 1) rem N; _ -> T end, S3}.

big_agent(Index, Peers, Pings, 0, Seed, Root) ->
    {T, S} = next(Index, Seed, tuple_size(Peers)),
    element(T + 1, Peers) ! {ping, Index},
    big_loop(Index, Peers, Pings, 0, S, Root);
big_agent(_, _, _, _, _, _) -> ok.

big_loop(Index, Peers, Pings, Sent, Seed, Root) ->
    receive
        {ping, From} ->
            element(From + 1, Peers) ! pong,
            big_loop(Index, Peers, Pings, Sent, Seed, Root);
        pong when Sent + 1 == Pings ->
            Root ! {done, Pings},
            big_loop(Index, Peers, Pings, Sent + 1, Seed, Root);
        pong ->
            {T, S} = next(Index, Seed, tuple_size(Peers)),
            element(T + 1, Peers) ! {ping, Index},
            big_loop(Index, Peers, Pings, Sent + 1, S, Root);
        stop -> ok
    end.

%% The Erlang node of our interop rows (benches/suite/interop.rs):
%% `erl -sname ... -run bench serve` registers `erlangen_pong`, which
%% answers {From, N} with {self(), N}, and `erlangen_count`, which takes
%% {count, Total, From} (and answers {counting, self()}), then Total
%% messages, then tells From {counted, Total}.
serve() ->
    register(erlangen_pong, spawn(fun serve_pong/0)),
    register(erlangen_count, spawn(fun serve_count/0)),
    receive after infinity -> ok end.

serve_pong() ->
    receive {From, N} -> From ! {self(), N}, serve_pong() end.

serve_count() ->
    receive
        {count, Total, From} ->
            From ! {counting, self()},
            count_n(Total),
            From ! {counted, Total},
            serve_count()
    end.

count_n(0) -> ok;
count_n(N) -> receive _ -> count_n(N - 1) end.

%% B8: distribution over loopback. This node becomes distributed
%% (-sname, epmd from erlang-base), starts a peer node as a second OS
%% process with the same code path, and measures against it.
with_peer(Run) ->
    _ = os:cmd("epmd -daemon"),
    Id = os:getpid(),
    {ok, _} = net_kernel:start([list_to_atom("bench_a_" ++ Id), shortnames]),
    erlang:set_cookie(node(), erlangen_bench),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    PeerName = "bench_b_" ++ Id,
    Peer = list_to_atom(PeerName ++ "@" ++ Host),
    Dir = filename:dirname(code:which(?MODULE)),
    Cmd = "erl -noshell -sname " ++ PeerName ++ " -setcookie erlangen_bench -pa " ++ Dir,
    Port = open_port({spawn, Cmd}, [exit_status]),
    wait_for(Peer, 200),
    try Run(Peer)
    after
        rpc:cast(Peer, erlang, halt, []),
        catch port_close(Port)
    end.

wait_for(_, 0) -> throw({dnf, "the peer node did not come up"});
wait_for(Peer, N) ->
    case net_adm:ping(Peer) of
        pong -> ok;
        pang -> timer:sleep(50), wait_for(Peer, N - 1)
    end.

dist_rtt(Peer, Div) ->
    Rounds = 20000 div Div,
    Pong = spawn(Peer, ?MODULE, dist_ponger, [Rounds + 1]),
    Pong ! {self(), 0},
    receive _ -> ok end,
    T0 = now_ns(),
    Times = timed_pinger(Pong, Rounds, []),
    Ns = now_ns() - T0,
    Sorted = list_to_tuple(lists:sort(Times)),
    Pct = fun(P) -> element(max(1, min(Rounds, round(P * Rounds))), Sorted) / 1000 end,
    io:format("B8 dist rtt rtt_us=~.2f p50_us=~.2f p99_us=~.2f p999_us=~.2f~n",
              [Ns / Rounds / 1000, Pct(0.5), Pct(0.99), Pct(0.999)]).

%% Round trips to Pong, each timed (ns).
timed_pinger(_, 0, Times) -> Times;
timed_pinger(Pong, N, Times) ->
    T0 = now_ns(),
    Pong ! {self(), N},
    receive _ -> ok end,
    timed_pinger(Pong, N - 1, [now_ns() - T0 | Times]).

dist_ponger(N) -> ponger(N).

dist_oneway(Peer, Div, Senders) ->
    Total = (400000 div Div) div Senders * Senders,
    Self = self(),
    Counter = spawn(Peer, ?MODULE, dist_count, [Total, Self]),
    Payload = binary:copy(<<7>>, 64),
    T0 = now_ns(),
    [spawn(fun() -> send_n(Counter, Payload, Total div Senders) end) || _ <- lists:seq(1, Senders)],
    receive {counted, Total} -> ok after 120000 -> throw({dnf, "the counter did not finish"}) end,
    Ns = now_ns() - T0,
    io:format("B8 dist oneway ~b per_msg_ns=~s msgs_per_s=~.1f~n",
              [Senders, per(Ns, Total), Total / (Ns / 1.0e9)]).

send_n(_, _, 0) -> ok;
send_n(To, Payload, N) -> To ! Payload, send_n(To, Payload, N - 1).

%% Bulk: Count binaries of Size bytes to a counter on the peer, as MB/s.
dist_bulk(Peer, Div, Size, Count0, Label) ->
    Count = max(2, Count0 div Div),
    Counter = spawn(Peer, ?MODULE, dist_count, [Count, self()]),
    Payload = binary:copy(<<7>>, Size),
    T0 = now_ns(),
    send_n(Counter, Payload, Count),
    receive {counted, Count} -> ok after 240000 -> throw({dnf, "the counter did not finish"}) end,
    Ns = now_ns() - T0,
    io:format("B8 dist bulk ~s messages=~b mb_s=~.1f~n", [Label, Count, Size * Count / (Ns / 1.0e9) / 1.0e6]).

%% Head-of-line: ping round trips on an idle connection, then while
%% another pair streams 64 MiB binaries between the same two nodes.
dist_hol(Peer, Div) ->
    Rounds = 500 div Div,
    Pong = spawn(Peer, ?MODULE, dist_ponger, [2 * Rounds + 1]),
    Pong ! {self(), 0},
    receive _ -> ok end,
    Idle = bounded_pinger(Pong, Rounds, now_ns() + 3000000000, []),
    Sink = spawn(Peer, ?MODULE, dist_sink, []),
    Payload = binary:copy(<<7>>, 64 bsl 20),
    Streamer = spawn(fun() -> stream(Sink, Payload) end),
    timer:sleep(100),
    Busy = bounded_pinger(Pong, Rounds, now_ns() + 3000000000, []),
    exit(Streamer, kill),
    Pct = fun(Times, P) ->
        Sorted = list_to_tuple(lists:sort(Times)),
        N = tuple_size(Sorted),
        element(max(1, min(N, round(P * N))), Sorted) / 1000
    end,
    io:format("B8 dist hol idle_p50_us=~.1f idle_p99_us=~.1f busy_p50_us=~.1f busy_p99_us=~.1f p99_ratio=~.2f~n",
              [Pct(Idle, 0.5), Pct(Idle, 0.99), Pct(Busy, 0.5), Pct(Busy, 0.99), Pct(Busy, 0.99) / Pct(Idle, 0.99)]).

stream(To, Payload) -> To ! Payload, stream(To, Payload).

%% Round trips to Pong, each timed (ns): at most N, until Deadline (ns).
bounded_pinger(_, 0, _, Times) -> Times;
bounded_pinger(Pong, N, Deadline, Times) ->
    case now_ns() > Deadline of
        true -> Times;
        false ->
            T0 = now_ns(),
            Pong ! {self(), N},
            receive _ -> ok end,
            bounded_pinger(Pong, N - 1, Deadline, [now_ns() - T0 | Times])
    end.

dist_sink() -> receive _ -> dist_sink() end.

dist_count(Total, Root) -> dist_count(Total, Total, Root).
dist_count(0, Total, Root) -> Root ! {counted, Total};
dist_count(N, Total, Root) -> receive _ -> dist_count(N - 1, Total, Root) end.

%% B13: what a cluster costs (benches/suite/cluster.rs). Peer nodes are OS
%% processes started by this node; each has Erlang's defaults (a scheduler
%% per core, connect_all: a full mesh).
start_peers(Prefix, Count) ->
    Id = os:getpid(),
    [_, Host] = string:split(atom_to_list(node()), "@"),
    Dir = filename:dirname(code:which(?MODULE)),
    Peers = [begin
                 Name = Prefix ++ integer_to_list(I) ++ "_" ++ Id,
                 Cmd = "erl -noshell -sname " ++ Name ++ " -setcookie erlangen_bench -pa " ++ Dir,
                 Port = open_port({spawn, Cmd}, [exit_status]),
                 {list_to_atom(Name ++ "@" ++ Host), Port}
             end || I <- lists:seq(1, Count)],
    [wait_for(Peer, 400) || {Peer, _} <- Peers],
    Peers.

%% Halts the peers and waits until each is gone: one left behind would
%% hold the runner's output pipe open.
stop_peers(Peers) ->
    [begin
         erlang:monitor_node(Peer, true),
         rpc:cast(Peer, erlang, halt, []),
         receive {nodedown, Peer} -> ok after 10000 -> ok end,
         catch port_close(Port)
     end || {Peer, Port} <- Peers].

%% Connects to Seed, then waits until Count other nodes are visible: the
%% µs it took.
join_and_wait(Seed, Count) ->
    T0 = now_ns(),
    true = net_kernel:connect_node(Seed),
    wait_nodes(Count),
    (now_ns() - T0) / 1000.

wait_nodes(Count) ->
    case length(nodes()) >= Count of
        true -> ok;
        false -> timer:sleep(1), wait_nodes(Count)
    end.

os_pid() -> list_to_integer(os:getpid()).

%% VmRSS (KiB) and utime + stime (ticks) of OS process Pid.
usage(Pid) ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Rss | _] = string:lexemes(binary_to_list(Rest), " \t\nkB"),
    {ok, Stat} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/stat"),
    [_, After] = string:split(binary_to_list(Stat), ") ", trailing),
    Fields = string:lexemes(After, " "),
    {list_to_integer(Rss), list_to_integer(lists:nth(12, Fields)) + list_to_integer(lists:nth(13, Fields))}.

%% 16 nodes meshed through the first (this node is hidden: it watches
%% without joining), their memory and idle CPU, and a 17th joining.
cluster_mesh() ->
    _ = os:cmd("epmd -daemon"),
    {ok, _} = net_kernel:start(list_to_atom("bench_a_" ++ os:getpid()), #{name_domain => shortnames, hidden => true}),
    erlang:set_cookie(node(), erlangen_bench),
    Peers = start_peers("mesh", 16),
    [{Seed, _} | _] = Peers,
    Joins = [rpc:async_call(Peer, ?MODULE, join_and_wait, [Seed, 15]) || {Peer, _} <- Peers],
    Formed = [rpc:yield(Join) || Join <- Joins],
    Pids = [rpc:call(Peer, ?MODULE, os_pid, []) || {Peer, _} <- Peers],
    timer:sleep(1000),
    Before = [usage(Pid) || Pid <- Pids],
    timer:sleep(5000),
    After = [usage(Pid) || Pid <- Pids],
    Ticks = list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))),
    RssKib = lists:sum([Rss || {Rss, _} <- After]) / 16,
    CpuS = lists:sum([(A - B) / Ticks || {{_, B}, {_, A}} <- lists:zip(Before, After)]),
    [{New, _}] = NewPeers = start_peers("newcomer", 1),
    JoinUs = rpc:call(New, ?MODULE, join_and_wait, [Seed, 16]),
    io:format("B13 cluster mesh nodes=16 rss_kib_per_node=~.1f idle_cpu_ms_per_s=~.3f join_ms=~.2f formed_ms_max=~.1f~n",
              [RssKib, CpuS / 5 * 1000 / 16, JoinUs / 1000, lists:max(Formed) / 1000]),
    stop_peers(NewPeers ++ Peers).

%% 250 members of the pg group `bench` on this node: each counts what it
%% gets until {closing, From}, then tells From how many came before.
start_members(Count) ->
    case pg:start(pg) of {ok, _} -> ok; {error, {already_started, _}} -> ok end,
    [spawn(fun() -> pg:join(bench, self()), member(0) end) || _ <- lists:seq(1, Count)],
    ok.

member(Got) ->
    receive
        {closing, From} -> From ! {count, Got}, member(0);
        {_N, _From} -> member(Got + 1)
    end.

%% 1,000 members of one pg group, 250 on each of 4 nodes; broadcasts from
%% this node: the members from pg:get_members/1, a ! to each (pg has no
%% send-to-group of its own).
cluster_group_send(Div) ->
    Broadcasts = max(1, 100 div Div),
    _ = os:cmd("epmd -daemon"),
    {ok, _} = net_kernel:start([list_to_atom("bench_a_" ++ os:getpid()), shortnames]),
    erlang:set_cookie(node(), erlangen_bench),
    Peers = start_peers("group", 3),
    ok = start_members(250),
    [ok = rpc:call(Peer, ?MODULE, start_members, [250]) || {Peer, _} <- Peers],
    wait_members(1000),
    Self = self(),
    T0 = now_ns(),
    [[P ! {N, Self} || P <- pg:get_members(bench)] || N <- lists:seq(1, Broadcasts)],
    [P ! {closing, Self} || P <- pg:get_members(bench)],
    [receive {count, Broadcasts} -> ok; {count, Other} -> throw({dnf, io_lib:format("a member got ~b", [Other])})
     after 60000 -> throw({dnf, "a member did not answer"}) end || _ <- lists:seq(1, 1000)],
    Ns = now_ns() - T0,
    Sends = Broadcasts + 1,
    io:format("B13 group send members=1000 nodes=4 per_broadcast_us=~.1f per_delivery_ns=~.1f~n",
              [Ns / Sends / 1000, Ns / (Sends * 1000)]),
    stop_peers(Peers).

wait_members(Count) ->
    case length(pg:get_members(bench)) >= Count of
        true -> ok;
        false -> timer:sleep(1), wait_members(Count)
    end.
