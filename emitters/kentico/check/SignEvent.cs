using System;
using System.Globalization;
using CommerceSync.Emitter;

// Prints one signed event as the delivery task would send it, for the Python test:
//   mono SignEvent.exe <secret> <event id> <unix timestamp> <type> <object id> <occurred unix ms>
// Output: the three header values and the body, one per line.
public static class SignEvent
{
    public static int Main(string[] args)
    {
        if (args.Length != 6)
        {
            Console.Error.WriteLine("usage: SignEvent secret id timestamp type object-id occurred-unix-ms");
            return 2;
        }
        long timestamp = long.Parse(args[2], CultureInfo.InvariantCulture);
        DateTime occurred = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc)
            .AddMilliseconds(long.Parse(args[5], CultureInfo.InvariantCulture));
        string body = StoreEventBody.Build(args[3], int.Parse(args[4], CultureInfo.InvariantCulture), occurred);
        Console.Out.NewLine = "\n";
        Console.WriteLine(args[1]);
        Console.WriteLine(timestamp.ToString(CultureInfo.InvariantCulture));
        Console.WriteLine(StandardWebhook.Sign(args[0], args[1], timestamp, body));
        Console.WriteLine(body);
        return 0;
    }
}
